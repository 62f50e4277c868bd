#![doc = include_str!("../README.md")]

pub mod client;
pub mod driver;
pub mod proto;
#[cfg(feature = "sim")]
pub mod sim;
