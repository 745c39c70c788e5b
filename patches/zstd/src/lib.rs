//! The three calls sled 0.34 makes of the `zstd` crate 0.9 (`block::compress` for each page it
//! writes, `block::decompress`, `stream::decode_all` for each page it reads), made with one zstd
//! context per thread, kept, instead of a new context per call. The relay's sled log compresses
//! its sealed records with the same `block::compress` and `stream::decode_all`.
//!
//! Why: a new zstd context asks the processor for its features (two `cpuid` instructions), and
//! in a virtual machine `cpuid` traps to the hypervisor. On the relay's reference machine that
//! was a fifth of a sled relay's CPU and a quarter of one with retention (docs/benchmarks.md,
//! "Retention"). The bytes written are the same: a kept context compressing at a level ignores
//! everything but that level (`ZSTD_compressCCtx`). What it costs: each thread that compresses
//! keeps about 130 KB, each that decompresses about 96 KB, more after a large input (zstd
//! shrinks a context again once it has been oversized for a while), until the thread ends.
//! Frames of zstd before 1.0 (its "legacy" formats) are not read: sled 0.34 never wrote them.

use std::cell::RefCell;
use std::io;
use std::thread::LocalKey;

thread_local! {
    static COMPRESSING: RefCell<zstd_safe::CCtx<'static>> = RefCell::new(zstd_safe::CCtx::create());
    static DECOMPRESSING: RefCell<zstd_safe::DCtx<'static>> = RefCell::new(zstd_safe::DCtx::create());
}

/// Runs `work` with this thread's kept context, or with a new one while the thread's locals are
/// being torn down.
fn with_kept<C, T>(kept: &'static LocalKey<RefCell<C>>, new: fn() -> C, work: impl FnOnce(&mut C) -> T) -> T {
    match kept.try_with(|_| ()) {
        Ok(()) => kept.with(|context| work(&mut context.borrow_mut())),
        Err(_) => work(&mut new()),
    }
}

fn failed(code: usize) -> io::Error {
    io::Error::other(zstd_safe::get_error_name(code))
}

pub mod block {
    use super::*;

    /// `data` as one zstd frame, compressed at `level`.
    pub fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
        with_kept(&COMPRESSING, zstd_safe::CCtx::create, |c| c.compress(&mut out, data, level))
            .map_err(failed)?;
        Ok(out)
    }

    /// The frames in `data`, decompressed, when they make at most `capacity` bytes.
    pub fn decompress(data: &[u8], capacity: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(capacity);
        with_kept(&DECOMPRESSING, zstd_safe::DCtx::create, |d| d.decompress(&mut out, data))
            .map_err(failed)?;
        Ok(out)
    }
}

pub mod stream {
    use super::*;

    /// Everything `source` holds, decompressed: its frames one after another. Input that is
    /// empty or ends inside a frame is an error, as in the crate this stands in for.
    pub fn decode_all<R: io::Read>(mut source: R) -> io::Result<Vec<u8>> {
        let mut input = Vec::new();
        source.read_to_end(&mut input)?;
        let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "incomplete frame");
        if input.is_empty() {
            return Err(truncated());
        }
        with_kept(&DECOMPRESSING, zstd_safe::DCtx::create, |d| {
            d.reset().map_err(failed)?;
            // The first frame's size when it says it (sled's always do; unknown is u64::MAX) and
            // it is not huge (only the frame's claim); the output grows as needed from there.
            let size = match zstd_safe::get_frame_content_size(&input) {
                claimed if claimed <= 64 << 20 => claimed as usize,
                _ => 0,
            };
            let mut out = Vec::with_capacity(size.max(1));
            let mut from = zstd_safe::InBuffer::around(&input);
            let mut frame_done = false;
            while from.pos() < input.len() || !frame_done {
                let before = (from.pos(), out.len());
                if out.len() == out.capacity() {
                    out.reserve(zstd_safe::DCtx::out_size());
                }
                let pos = out.len();
                let mut to = zstd_safe::OutBuffer::around_pos(&mut out, pos);
                frame_done = d.decompress_stream(&mut to, &mut from).map_err(failed)? == 0;
                if !frame_done && (from.pos(), out.len()) == before {
                    return Err(truncated());
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"relay message text "[i % 19] ^ (i / 7) as u8).collect()
    }

    #[test]
    fn what_one_compresses_the_others_give_back() {
        for n in [0, 1, 100, 4096, 300_000] {
            let data = text(n);
            let frame = block::compress(&data, 1).unwrap();
            assert_eq!(block::decompress(&frame, n).unwrap(), data);
            assert_eq!(stream::decode_all(&frame[..]).unwrap(), data);
            // Two frames one after the other, as a stream may hold.
            let two = [frame.clone(), frame.clone()].concat();
            assert_eq!(stream::decode_all(&two[..]).unwrap(), [data.clone(), data.clone()].concat());
        }
    }

    #[test]
    fn damaged_short_or_empty_input_is_an_error() {
        let data = text(10_000);
        let frame = block::compress(&data, 1).unwrap();
        assert!(stream::decode_all(&frame[..frame.len() - 3]).is_err(), "cut short");
        assert!(block::decompress(&frame[..frame.len() - 3], data.len()).is_err());
        assert!(block::decompress(&frame, data.len() - 1).is_err(), "larger than capacity");
        assert!(stream::decode_all(&b"not zstd at all"[..]).is_err());
        assert!(stream::decode_all(&[][..]).is_err(), "empty");
        // The kept context works on after an error.
        assert_eq!(stream::decode_all(&frame[..]).unwrap(), data);
    }
}
