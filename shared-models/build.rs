//! The migrations are embedded into the crate at compile time: build it again when one is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
