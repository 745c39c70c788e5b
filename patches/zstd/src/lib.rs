//! The three calls sled 0.34 makes of the `zstd` crate 0.9 (`block::compress` for each page it
//! writes, `block::decompress`, `stream::decode_all` for each page it reads), made with one zstd
//! context per thread, kept, instead of a new context per call.
//!
//! Why: a new zstd context asks the processor for its features (two `cpuid` instructions), and
//! in a virtual machine `cpuid` traps to the hypervisor. On the relay's reference machine that
//! was a fifth of a sled relay's CPU and a quarter of one with retention (docs/benchmarks.md,
//! "sled's zstd"). The bytes written are the same: a kept context compressing at a level
//! ignores everything but that level (`ZSTD_compressCCtx`). What it costs: each thread that
//! compresses keeps about 130 KB, each that decompresses about 96 KB, until it ends.

use std::cell::RefCell;
use std::io;

thread_local! {
    static COMPRESSING: RefCell<zstd_safe::CCtx<'static>> = RefCell::new(zstd_safe::CCtx::create());
    static DECOMPRESSING: RefCell<zstd_safe::DCtx<'static>> = RefCell::new(zstd_safe::DCtx::create());
}

fn failed(code: usize) -> io::Error {
    io::Error::other(zstd_safe::get_error_name(code))
}

pub mod block {
    use super::*;

    /// `data` as one zstd frame, compressed at `level`.
    pub fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
        COMPRESSING.with(|c| c.borrow_mut().compress(&mut out, data, level)).map_err(failed)?;
        Ok(out)
    }

    /// The frames in `data`, decompressed, when they make at most `capacity` bytes.
    pub fn decompress(data: &[u8], capacity: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(capacity);
        DECOMPRESSING.with(|d| d.borrow_mut().decompress(&mut out, data)).map_err(failed)?;
        Ok(out)
    }
}

pub mod stream {
    use super::*;

    /// Everything `source` holds, decompressed: its frames one after another. Input that ends
    /// inside a frame is an error.
    pub fn decode_all<R: io::Read>(mut source: R) -> io::Result<Vec<u8>> {
        let mut input = Vec::new();
        source.read_to_end(&mut input)?;
        DECOMPRESSING.with(|d| {
            let mut d = d.borrow_mut();
            d.reset().map_err(failed)?;
            let (mut out, mut from) = (Vec::new(), zstd_safe::InBuffer::around(&input));
            let mut frame_done = true;
            while from.pos() < input.len() || !frame_done {
                let before = (from.pos(), out.len());
                out.reserve(zstd_safe::DCtx::out_size());
                let pos = out.len();
                let mut to = zstd_safe::OutBuffer::around_pos(&mut out, pos);
                frame_done = d.decompress_stream(&mut to, &mut from).map_err(failed)? == 0;
                if !frame_done && (from.pos(), out.len()) == before {
                    let truncated = "the compressed data ends inside a frame";
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, truncated));
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
        assert_eq!(stream::decode_all(&[][..]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn damaged_or_short_input_is_an_error() {
        let data = text(10_000);
        let frame = block::compress(&data, 1).unwrap();
        assert!(stream::decode_all(&frame[..frame.len() - 3]).is_err(), "cut short");
        assert!(block::decompress(&frame[..frame.len() - 3], data.len()).is_err());
        assert!(block::decompress(&frame, data.len() - 1).is_err(), "larger than capacity");
        assert!(stream::decode_all(&b"not zstd at all"[..]).is_err());
        // The kept context works on after an error.
        assert_eq!(stream::decode_all(&frame[..]).unwrap(), data);
    }
}
