//! One node of the distributed lock service: `lock --id node1 --peers node1=127.0.0.1:5001,...`.

fn main() -> std::process::ExitCode {
    examples::runner::cli::main(examples::lock::LockTable::default(), examples::lock::rpc)
}
