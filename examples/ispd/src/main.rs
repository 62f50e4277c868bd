//! `ispd`: the isp daemon.

fn main() {
    eprintln!("ispd: not built yet");
    std::process::exit(2);
}
