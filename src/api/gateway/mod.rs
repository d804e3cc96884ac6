//! The payment gateway's fiscalization dialect (seed 004): `POST /gateway/sale`
//! takes the merchant's form-encoded sale request with its `cheque`, and
//! `POST /gateway/status` tells where the receipt of an order stands.
//! `facts` holds the gateway's code tables and every ASSUMED fact, `parse`
//! turns a request into a domain draft; this file is the HTTP shell.

pub mod facts;
pub mod parse;
