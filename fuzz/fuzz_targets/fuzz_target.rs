//! One libFuzzer binary for every target of `tests/fuzz/targets.rs`; `TRANSDUCE_FUZZ_TARGET`
//! names the one to run (`tools/fuzz.sh` sets it).
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

use std::sync::OnceLock;

fn chosen() -> &'static targets::Target {
    static TARGET: OnceLock<&'static targets::Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let name = std::env::var("TRANSDUCE_FUZZ_TARGET").unwrap_or_default();
        targets::target(&name).unwrap_or_else(|| {
            let names: Vec<&str> = targets::TARGETS.iter().map(|t| t.name).collect();
            panic!("TRANSDUCE_FUZZ_TARGET={name:?}: not one of {}", names.join(", "))
        })
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| (chosen().run)(data));
