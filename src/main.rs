//! The PWA's entry point (trunk builds this binary for wasm32).

fn main() {
    #[cfg(target_arch = "wasm32")]
    attune::start();
}
