//! A private Garage for bench/ scripts (the tests' harness, tests/src/garage.rs): prints one line
//! of `CONTROLD_S3_*` settings and Garage's pid, then runs until its stdin closes.

use std::io::{Read, Write};

use cfstream_e2e::garage::{Garage, REGION};

fn main() {
    let garage = Garage::start();
    println!(
        "CONTROLD_S3_ENDPOINT={} CONTROLD_S3_REGION={REGION} CONTROLD_S3_ACCESS_KEY_ID={} \
         CONTROLD_S3_SECRET_ACCESS_KEY={} CONTROLD_S3_ALLOW_HTTP=true GARAGE_PID={}",
        garage.endpoint,
        garage.access_key_id,
        garage.secret_access_key,
        garage.pid()
    );
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
