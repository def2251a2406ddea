//! Contract tests in the real Clarity VM.

mod support;
mod smoke {
    use super::support::*;
    #[test]
    fn deploys() {
        let mut t = Chain::new();
        let r = t.call(
            WALLET_1,
            PC,
            "register-patient",
            &[buff(&[1; 32]), none(), none()],
        );
        println!("{:?}", r);
        let r = t.call(
            WALLET_1,
            PC,
            "register-patient",
            &[buff(&[1; 32]), none(), none()],
        );
        println!("{:?}", r);
    }
}
