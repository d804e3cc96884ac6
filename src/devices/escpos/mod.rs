//! ESC/POS receipt printer: command encoding, receipt layout, real-time status, driver.
