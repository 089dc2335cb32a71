// A build script makes Cargo treat this crate's feature unification as a real dependency edge.
fn main() {}
