//! One node of the configuration center: `config --id node1 --peers node1=127.0.0.1:5001,...`.

fn main() -> std::process::ExitCode {
    examples::runner::cli::main(examples::config::ConfigStore::default(), examples::config::rpc)
}
