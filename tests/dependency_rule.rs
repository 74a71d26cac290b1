//! The library crate stands alone: no command-line, progress-bar or signal crates among its
//! normal dependencies (`cargo tree -p transduce -e normal`), while the app has them.

mod common;

fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(common::root())
        .args(["tree", "--offline", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

#[test]
fn the_library_has_no_cli_progress_bar_or_signal_dependencies() {
    let library = normal_dependencies("transduce");
    assert!(library.iter().any(|d| d == "candle-core"), "the tree lists dependencies: {library:?}");
    for forbidden in ["clap", "indicatif", "signal-hook"] {
        assert!(!library.iter().any(|d| d == forbidden), "the library depends on {forbidden}");
    }
    let app = normal_dependencies("transduce-cli");
    for needed in ["clap", "indicatif", "signal-hook", "transduce"] {
        assert!(app.iter().any(|d| d == needed), "the app should depend on {needed}: {app:?}");
    }
}
