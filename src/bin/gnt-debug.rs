//! `gnt-debug`: see gnt-debug(8). Everything is in `ganeti::cli::debug`.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    std::process::exit(ganeti::cli::debug::main(&argv));
}
