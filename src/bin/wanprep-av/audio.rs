//! Audio that MP4 cannot carry as it is (PCM, Opus, Vorbis, FLAC, …) becomes AAC: decoded,
//! converted by a libavfilter graph (planar float, a rate AAC supports, mono or stereo, frames
//! of the encoder's size), encoded by FFmpeg's native AAC encoder.

use ffmpeg_next as ff;

/// Sample rates the AAC encoder takes.
const AAC_RATES: [u32; 12] =
    [96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000];

/// One audio stream being turned into AAC, written to output stream `stream`.
pub struct AacTranscoder {
    decoder: ff::decoder::Audio,
    graph: ff::filter::Graph,
    encoder: ff::encoder::Audio,
    stream: usize,
    enc_tb: ff::Rational,
    /// Samples sent to the encoder: the next frame's timestamp, so the audio is contiguous
    /// across skipped packets and loop passes.
    samples: i64,
    frame: ff::frame::Audio,
    filtered: ff::frame::Audio,
    packet: ff::Packet,
    /// The source codec, for the change list.
    pub source_codec: String,
}

fn err(what: &'static str) -> impl Fn(ff::Error) -> String {
    move |e| format!("{what}: {e}")
}

impl AacTranscoder {
    /// Adds an AAC stream to `octx` (before its header is written) for audio with `params`.
    pub fn new(octx: &mut ff::format::context::Output, params: ff::codec::Parameters) -> Result<Self, String> {
        let source_codec = format!("{:?}", params.id()).to_lowercase();
        let decoder = ff::codec::Context::from_parameters(params)
            .and_then(|c| c.decoder().audio())
            .map_err(|e| format!("no decoder for the {source_codec} audio: {e}"))?;
        let codec = ff::encoder::find(ff::codec::Id::AAC).ok_or("this FFmpeg has no AAC encoder")?;
        let global_header = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
        let mut ost = octx.add_stream(codec).map_err(err("cannot add the audio stream"))?;
        let stream = ost.index();
        let rate = if AAC_RATES.contains(&decoder.rate()) { decoder.rate() } else { 48_000 };
        let channels = decoder.channels().clamp(1, 2);
        let layout = if channels == 1 { ff::ChannelLayout::MONO } else { ff::ChannelLayout::STEREO };
        let mut enc = ff::codec::Context::new_with_codec(codec).encoder().audio().map_err(err("AAC encoder"))?;
        enc.set_rate(rate as i32);
        enc.set_channel_layout(layout);
        enc.set_channels(i32::from(channels));
        enc.set_format(ff::format::Sample::F32(ff::format::sample::Type::Planar));
        enc.set_bit_rate(if channels == 1 { 96_000 } else { 160_000 });
        let enc_tb = ff::Rational::new(1, rate as i32);
        enc.set_time_base(enc_tb);
        if global_header {
            enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc.open_as(codec).map_err(err("cannot open the AAC encoder"))?;
        ost.set_parameters(&encoder);
        let frame_size = encoder.frame_size().max(1);

        let in_layout = if decoder.channel_layout().is_empty() {
            ff::ChannelLayout::default(i32::from(decoder.channels().max(1)))
        } else {
            decoder.channel_layout()
        };
        let in_rate = decoder.rate().max(1);
        let args = format!(
            "time_base=1/{in_rate}:sample_rate={in_rate}:sample_fmt={}:channel_layout=0x{:x}",
            decoder.format().name(),
            in_layout.bits()
        );
        let mut graph = ff::filter::Graph::new();
        graph
            .add(&ff::filter::find("abuffer").ok_or("no abuffer filter")?, "in", &args)
            .map_err(err("audio filter"))?;
        graph
            .add(&ff::filter::find("abuffersink").ok_or("no abuffersink filter")?, "out", "")
            .map_err(err("audio filter"))?;
        let layout_name = if channels == 1 { "mono" } else { "stereo" };
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| {
                p.parse(&format!(
                    "aresample={rate},aformat=sample_fmts=fltp:sample_rates={rate}:channel_layouts={layout_name},asetnsamples=n={frame_size}:p=0"
                ))
            })
            .map_err(err("audio filter graph"))?;
        graph.validate().map_err(err("audio filter graph"))?;
        Ok(AacTranscoder {
            decoder,
            graph,
            encoder,
            stream,
            enc_tb,
            samples: 0,
            frame: ff::frame::Audio::empty(),
            filtered: ff::frame::Audio::empty(),
            packet: ff::Packet::empty(),
            source_codec,
        })
    }

    /// Decodes one source packet and writes whatever AAC is ready. A packet the decoder rejects
    /// is skipped (a damaged audio frame must not fail the video).
    pub fn send(&mut self, packet: &ff::Packet, octx: &mut ff::format::context::Output) -> Result<(), String> {
        if self.decoder.send_packet(packet).is_err() {
            return Ok(());
        }
        self.pump(octx, false)
    }

    /// Flushes decoder, filter and encoder.
    pub fn finish(&mut self, octx: &mut ff::format::context::Output) -> Result<(), String> {
        let _ = self.decoder.send_eof();
        self.pump(octx, true)?;
        self.encoder.send_eof().map_err(err("AAC encoding failed"))?;
        self.drain(octx)
    }

    fn pump(&mut self, octx: &mut ff::format::context::Output, flush: bool) -> Result<(), String> {
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            self.frame.set_pts(None);
            self.graph.get("in").ok_or("audio filter input")?.source().add(&self.frame).map_err(err("audio filter"))?;
        }
        if flush {
            let _ = self.graph.get("in").ok_or("audio filter input")?.source().flush();
        }
        while self.graph.get("out").ok_or("audio filter output")?.sink().frame(&mut self.filtered).is_ok() {
            self.filtered.set_pts(Some(self.samples));
            self.samples += self.filtered.samples() as i64;
            self.encoder.send_frame(&self.filtered).map_err(err("AAC encoding failed"))?;
            crate::ffmpeg::unref(&mut self.filtered);
            self.drain(octx)?;
        }
        Ok(())
    }

    fn drain(&mut self, octx: &mut ff::format::context::Output) -> Result<(), String> {
        while self.encoder.receive_packet(&mut self.packet).is_ok() {
            self.packet.set_stream(self.stream);
            let ost_tb = octx.stream(self.stream).ok_or("stream vanished")?.time_base();
            self.packet.rescale_ts(self.enc_tb, ost_tb);
            self.packet.write_interleaved(octx).map_err(err("writing audio failed"))?;
        }
        Ok(())
    }
}
