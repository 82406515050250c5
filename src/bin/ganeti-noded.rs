//! ganeti-noded: the Ganeti node daemon.

use ganeti::daemon;
use ganeti::paths::Daemon;

fn main() {
    // Before anything allocates on another thread: one malloc arena.
    ganeti::sys::limit_malloc_arenas();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match daemon::parse_or_exit(Daemon::Noded, &args) {
        Ok(options) => ganeti::noded::run(&options),
        Err(code) => code,
    };
    std::process::exit(code);
}
