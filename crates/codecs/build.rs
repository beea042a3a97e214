//! With the `apm` feature: finds WebRTC's AudioProcessing module by
//! pkg-config (Debian: libwebrtc-audio-processing-dev) and compiles the
//! small C++ face src/apm/shim.cpp against it; `cfg(apm_linked)` tells
//! src/apm.rs it is there. Where the library is missing the crate still
//! builds, and `AudioProcessor::new` says so.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(apm_linked)");
    println!("cargo:rerun-if-changed=src/apm/shim.cpp");
    if std::env::var_os("CARGO_FEATURE_APM").is_none() {
        return;
    }
    let library = match pkg_config::Config::new()
        .atleast_version("0.3")
        .probe("webrtc-audio-processing")
    {
        Ok(library) => library,
        Err(e) => {
            println!(
                "cargo:warning=audio processing left out: webrtc-audio-processing not found ({e})"
            );
            return;
        }
    };
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("src/apm/shim.cpp")
        .flag_if_supported("-std=c++11")
        .flag_if_supported("-Wno-unused-parameter")
        .define("WEBRTC_POSIX", None)
        .define("WEBRTC_AUDIO_PROCESSING_ONLY_BUILD", None);
    for path in &library.include_paths {
        build.include(path);
    }
    build.compile("realtimer_apm_shim");
    println!("cargo:rustc-cfg=apm_linked");
}
