//! `gnt-job`: see gnt-job(8). Everything is in `ganeti::cli::job`.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    std::process::exit(ganeti::cli::job::main(&argv));
}
