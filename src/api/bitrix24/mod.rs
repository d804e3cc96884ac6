//! The Bitrix24 REST cashbox dialect (seed 003): `POST /bitrix24/print` takes
//! a receipt (PHP-style form or JSON) and answers `{"UUID"}` or
//! `{"ERRORS": [...]}`; `POST /bitrix24/check` answers `WAIT`, `DONE` with the
//! fiscal attributes, or `ERROR`. `facts` holds the code tables and every
//! ASSUMED fact, `parse` turns a body into a domain draft; this file is the
//! HTTP shell.

pub mod facts;
pub mod parse;
