fn main() {
    let code = memsleuth_cli::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
