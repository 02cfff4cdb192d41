//! WASI preview1 host functions, written against service traits.

#![no_std]
