namespace Warden.Core.DataGuard;

/// <summary>
/// Fingerprints of the distinctive values in labelled data, to recognise them when they reappear in an outbound
/// call after case, whitespace, punctuation or encoding changes. Only 64-bit hashes are kept, never the text.
/// </summary>
/// <remarks>
/// Text is reduced to lower-case alphanumeric tokens; digit groups separated by one punctuation mark are joined
/// ("104,000" and "104 000" are both "104000"; an IBAN written in groups is one token). Two kinds of fingerprint:
/// a <em>distinctive token</em> (six or more characters with a digit, or twelve or more of anything: amounts,
/// account numbers, keys, identifiers) and a <em>shingle</em> of four consecutive tokens (phrases). One distinctive
/// token or two shingles make a match: a shared common phrase alone does not.
/// </remarks>
public static class Fingerprinter
{
    private const int ShingleSize = 4;

    /// <summary>Adds the fingerprints of a (normalized) text to a set, up to <paramref name="max"/> entries in total.</summary>
    public static void Add(ReadOnlySpan<char> text, ISet<ulong> into, int max)
    {
        var sink = new Collect(into, max);
        Walk(text, ref sink);
    }

    /// <summary>Counts distinctive-token and shingle matches of a text against a set.</summary>
    public static (int Tokens, int Shingles) Match(ReadOnlySpan<char> text, IReadOnlySet<ulong> set) =>
        Match(text, FingerprintSet.Create(set));

    /// <summary>Counts distinctive-token and shingle matches of a text against a set.</summary>
    public static (int Tokens, int Shingles) Match(ReadOnlySpan<char> text, FingerprintSet set)
    {
        if (set.Count == 0)
        {
            return (0, 0);
        }

        var sink = new Count(set);
        Walk(text, ref sink);
        return (sink.Tokens, sink.Shingles);
    }

    /// <summary>True when a match count is strong enough to be a finding.</summary>
    public static bool IsFinding((int Tokens, int Shingles) m) => m.Tokens >= 1 || m.Shingles >= 2;

    /// <summary>What is done with each distinctive token and each shingle (a struct, so the walk is compiled per use).</summary>
    private interface ISink
    {
        /// <summary>False stops the walk.</summary>
        bool Token(ulong distinctive);

        bool Shingle(ulong shingle);
    }

    private struct Collect(ISet<ulong> into, int max) : ISink
    {
        public readonly bool Token(ulong distinctive)
        {
            into.Add(distinctive);
            return into.Count < max;
        }

        public readonly bool Shingle(ulong shingle)
        {
            into.Add(shingle);
            return into.Count < max;
        }
    }

    private struct Count(FingerprintSet set) : ISink
    {
        public int Tokens;
        public int Shingles;

        public bool Token(ulong distinctive)
        {
            if (set.Contains(distinctive))
            {
                Tokens++;
            }

            return true;
        }

        public bool Shingle(ulong shingle)
        {
            if (set.Contains(shingle))
            {
                Shingles++;
            }

            return true;
        }
    }

    // ASCII letters and digits make tokens; everything else (non-ASCII too) separates them. Letters map to their
    // lower case, digits to themselves (0 = not part of a token).
    private static ReadOnlySpan<byte> Lower =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        (byte)'0', (byte)'1', (byte)'2', (byte)'3', (byte)'4', (byte)'5', (byte)'6', (byte)'7', (byte)'8', (byte)'9', 0, 0, 0, 0, 0, 0,
        0, (byte)'a', (byte)'b', (byte)'c', (byte)'d', (byte)'e', (byte)'f', (byte)'g', (byte)'h', (byte)'i', (byte)'j', (byte)'k', (byte)'l', (byte)'m', (byte)'n', (byte)'o',
        (byte)'p', (byte)'q', (byte)'r', (byte)'s', (byte)'t', (byte)'u', (byte)'v', (byte)'w', (byte)'x', (byte)'y', (byte)'z', 0, 0, 0, 0, 0,
        0, (byte)'a', (byte)'b', (byte)'c', (byte)'d', (byte)'e', (byte)'f', (byte)'g', (byte)'h', (byte)'i', (byte)'j', (byte)'k', (byte)'l', (byte)'m', (byte)'n', (byte)'o',
        (byte)'p', (byte)'q', (byte)'r', (byte)'s', (byte)'t', (byte)'u', (byte)'v', (byte)'w', (byte)'x', (byte)'y', (byte)'z', 0, 0, 0, 0, 0,
    ];

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int LowerOf(char c) => c < 128 ? Lower[c] : 0;

    private static bool IsDigit(char c) => (uint)(c - '0') <= 9;

    /// <summary>
    /// Walks the tokens of a text in one loop. A token's hash is FNV-1a over its lower-case ASCII letters and digits; a
    /// distinctive token's hash has its low bit set, a shingle's (four consecutive tokens, oldest first) has it clear.
    /// Stored fingerprints depend on all of this: never change it.
    /// </summary>
    private static void Walk<TSink>(ReadOnlySpan<char> s, ref TSink sink)
        where TSink : struct, ISink
    {
        ulong w0 = 0, w1 = 0, w2 = 0;
        var count = 0;
        var i = 0;
        while (true)
        {
            // Skip to the next token.
            while ((uint)i < (uint)s.Length && LowerOf(s[i]) == 0)
            {
                i++;
            }

            if (i >= s.Length)
            {
                return;
            }

            var h = 14695981039346656037UL;
            var start = i;
            var length = 0;
            var digits = false;
            while ((uint)i < (uint)s.Length)
            {
                var c = s[i];
                var lower = LowerOf(c);
                if (lower != 0)
                {
                    h = (h ^ (uint)lower) * 1099511628211UL;
                    digits |= lower <= '9';
                    length++;
                    i++;
                    continue;
                }

                // One separator between digit groups (104,000 / +1-555-0142 / DE89 3704) keeps the token going.
                if (i > start && (uint)(i + 1) < (uint)s.Length && c is ',' or '.' or ' ' or '-' or '/' && IsDigit(s[i + 1]) && IsDigit(s[i - 1]))
                {
                    i++;
                    continue;
                }

                break;
            }

            if ((length >= 12 || (digits && length >= 6)) && !sink.Token(h | 1))
            {
                return;
            }

            if (++count >= ShingleSize && !sink.Shingle(Shingle(w0, w1, w2, h) & ~1UL))
            {
                return;
            }

            (w0, w1, w2) = (w1, w2, h);
        }
    }

    /// <summary>The hash of four consecutive tokens, oldest first (order matters).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong Shingle(ulong oldest, ulong second, ulong third, ulong newest)
    {
        var h = Mix(14695981039346656037UL, oldest);
        h = Mix(h, second);
        h = Mix(h, third);
        return Mix(h, newest);

        static ulong Mix(ulong h, ulong token)
        {
            h = (h ^ token) * 1099511628211UL;
            return h ^ (h >> 29);
        }
    }
}
