//! `gnt-cluster`: see gnt-cluster(8). Everything is in `ganeti::cli::cluster`.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    std::process::exit(ganeti::cli::cluster::main(&argv));
}
