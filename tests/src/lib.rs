//! Integration tests for Basalt.
