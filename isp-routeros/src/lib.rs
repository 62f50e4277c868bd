#![doc = include_str!("../README.md")]

pub mod client;
pub mod driver;
pub mod proto;
pub mod rest;
#[cfg(feature = "sim")]
pub mod sim;
