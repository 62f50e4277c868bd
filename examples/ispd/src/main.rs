//! `ispd`: the isp daemon. See the crate docs and `ispd --help`.

fn main() {
    eprintln!("ispd: not built yet");
    std::process::exit(2);
}
