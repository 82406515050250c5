//! ganeti-masterd: the Ganeti master daemon.

use ganeti::daemon;
use ganeti::paths::Daemon;

fn main() {
    ganeti::sys::limit_malloc_arenas();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match daemon::parse_or_exit(Daemon::Masterd, &args) {
        Ok(options) => ganeti::masterd::run(&options),
        Err(code) => code,
    };
    std::process::exit(code);
}
