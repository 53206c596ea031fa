fn main() {
    std::process::exit(skyform::run());
}
