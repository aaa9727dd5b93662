//! The password ZooKeeper gives a session, derived from its id alone.
//!
//! The server makes each session's password by seeding `java.util.Random` with the session
//! id XOR a fixed constant and drawing 16 bytes (`ZooKeeperServer.generatePasswd`), so anyone
//! who knows an id can compute its password. `chaos expire` relies on this to end any
//! client's session, whatever language the client is written in.

/// The constant the server mixes into the seed.
const SERVER_SECRET: i64 = 0xB341_5C00;

/// `java.util.Random`'s linear congruential generator (48-bit state).
const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const INCREMENT: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

/// The 16-byte password of session `id`.
pub fn session_password(id: i64) -> [u8; 16] {
    let seed = u64::from_ne_bytes((id ^ SERVER_SECRET).to_ne_bytes());
    let mut state = (seed ^ MULTIPLIER) & MASK;
    let mut password = [0u8; 16];
    // `nextBytes` fills four bytes per `nextInt`, low byte first.
    for chunk in password.chunks_mut(4) {
        state = state.wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT) & MASK;
        let mut word = (state >> 16) as u32;
        for byte in chunk {
            *byte = (word & 0xff) as u8;
            word >>= 8;
        }
    }
    password
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differs_per_session() {
        assert_ne!(session_password(1), session_password(2));
        assert_eq!(
            session_password(0x1000a3c2e5b0000),
            session_password(0x1000a3c2e5b0000)
        );
    }
}
