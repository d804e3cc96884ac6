//! Shtrih-M fiscal register: pure protocol core and host-side driver.
