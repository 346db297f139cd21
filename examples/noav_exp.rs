fn main() {
    let f = wanprep::probe(std::env::args().nth(1).unwrap()).unwrap();
    println!("{:?}", f.format);
}
