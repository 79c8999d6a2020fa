//! The `slotline` binary: parses the command line and hands over to [`slotline::cli`].

fn main() -> std::process::ExitCode {
    slotline::cli::main()
}
