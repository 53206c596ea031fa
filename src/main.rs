// mimalloc instead of glibc's malloc: see the CHANGELOG's issue 16 entry for the figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(skyform::run());
}
