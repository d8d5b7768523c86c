namespace Warden.Conformance.Fixture;

/// <summary>Tiny but valid media files, so clients that decode content do not choke on placeholders.</summary>
internal static class Media
{
    /// <summary>A 1x1 red PNG.</summary>
    public static readonly byte[] Png = Convert.FromBase64String(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==");

    /// <summary>Ten milliseconds of 8 kHz 16-bit mono silence as a RIFF/WAVE file.</summary>
    public static readonly byte[] Wav = CreateSilentWav(sampleRate: 8000, samples: 80);

    private static byte[] CreateSilentWav(int sampleRate, int samples)
    {
        const short channels = 1, bitsPerSample = 16;
        int dataBytes = samples * channels * bitsPerSample / 8;
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream))
        {
            w.Write("RIFF"u8);
            w.Write(36 + dataBytes);
            w.Write("WAVE"u8);
            w.Write("fmt "u8);
            w.Write(16);
            w.Write((short)1); // PCM
            w.Write(channels);
            w.Write(sampleRate);
            w.Write(sampleRate * channels * bitsPerSample / 8);
            w.Write((short)(channels * bitsPerSample / 8));
            w.Write(bitsPerSample);
            w.Write("data"u8);
            w.Write(dataBytes);
            w.Write(new byte[dataBytes]);
        }

        return stream.ToArray();
    }
}
