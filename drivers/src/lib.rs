//! Device drivers behind small traits: UARTs, RTCs, exit devices, virtio.

#![no_std]
