//! What other crates' tests share with `cargo xtask`: [`image`], the one way the watcher image is built (the image
//! tests build it through the same code as `cargo xtask image`).

pub mod image;
