//! One node of the replicated KV store: `kv --id node1 --peers node1=127.0.0.1:5001,...`.
//! Talk to it with any JSON-RPC client, e.g.
//! `curl -s -H 'Authorization: Bearer T' -d '{"jsonrpc":"2.0","id":1,"method":"kv_put","params":{"key":"a","value":"1"}}' http://127.0.0.1:5001`.

fn main() -> std::process::ExitCode {
    examples::runner::cli::main(examples::kv::KvStore::default(), examples::kv::rpc)
}
