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
        if (into.Count >= max)
        {
            return;
        }

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

    /// <summary>
    /// The matches of a text that involve its first or last token (the first token, the last, the shingle of the first
    /// four and that of the last four): <see cref="Match(ReadOnlySpan{char}, FingerprintSet)"/> minus the matches of the
    /// tokens and shingles inside. When the text is part of a longer one (a field in the joined arguments) only these
    /// can differ from the longer text's, since a neighbour can merge with an edge token but not reach inside.
    /// </summary>
    internal static (int Tokens, int Shingles) MatchEdges(ReadOnlySpan<char> text, FingerprintSet set)
    {
        if (set.Count == 0)
        {
            return (0, 0);
        }

        // The first four tokens, and where they end.
        var head = new Edges(set, stopAfter: ShingleSize);
        var headEnd = Walk(text, ref head);
        if (head.Seen < ShingleSize)
        {
            return Match(text, set);
        }

        // The last four: walk from a point where no token can be running (a character that always separates tokens),
        // far enough back to see four tokens, and never into the head.
        for (var back = 64; ; back *= 2)
        {
            var p = Math.Max(headEnd, text.Length - back);
            while (p > headEnd && !AlwaysSeparates(text, p - 1))
            {
                p--;
            }

            if (p <= headEnd)
            {
                return Match(text, set);
            }

            var tail = new Edges(set, stopAfter: int.MaxValue);
            Walk(text[p..], ref tail);
            if (tail.Seen >= ShingleSize)
            {
                return (head.FirstToken + tail.LastToken, head.FirstShingle + tail.LastShingle);
            }
        }
    }

    /// <summary>True when the character at <paramref name="i"/> ends any token before it and starts none.</summary>
    private static bool AlwaysSeparates(ReadOnlySpan<char> s, int i) =>
        LowerOf(s[i]) == 0 && !(s[i] is ',' or '.' or ' ' or '-' or '/' && i > 0 && i + 1 < s.Length && IsDigit(s[i - 1]) && IsDigit(s[i + 1]));

    /// <summary>True when a match count is strong enough to be a finding.</summary>
    public static bool IsFinding((int Tokens, int Shingles) m) => m.Tokens >= 1 || m.Shingles >= 2;

    /// <summary>What is done with each token (a struct, so the walk is compiled per use).</summary>
    private interface ISink
    {
        /// <summary>
        /// A token: its fingerprint when distinctive (else 0), and the shingle it closes (else 0; from the fourth token on).
        /// False stops the walk.
        /// </summary>
        bool Token(ulong distinctive, ulong shingle);
    }

    private struct Collect(ISet<ulong> into, int max) : ISink
    {
        public readonly bool Token(ulong distinctive, ulong shingle)
        {
            if (distinctive != 0)
            {
                into.Add(distinctive);
            }

            if (shingle != 0)
            {
                into.Add(shingle);
            }

            return into.Count < max;
        }
    }

    private struct Count(FingerprintSet set) : ISink
    {
        public int Tokens;
        public int Shingles;

        public bool Token(ulong distinctive, ulong shingle)
        {
            if (distinctive != 0 && set.Contains(distinctive))
            {
                Tokens++;
            }

            if (shingle != 0 && set.Contains(shingle))
            {
                Shingles++;
            }

            return true;
        }
    }

    /// <summary>Matches of the first token and shingle, and of the last ones, of a walk.</summary>
    private struct Edges(FingerprintSet set, int stopAfter) : ISink
    {
        public int Seen;
        public int FirstToken;
        public int FirstShingle;
        public int LastToken;
        public int LastShingle;

        public bool Token(ulong distinctive, ulong shingle)
        {
            Seen++;
            LastToken = distinctive != 0 && set.Contains(distinctive) ? 1 : 0;
            LastShingle = shingle != 0 && set.Contains(shingle) ? 1 : 0;
            if (Seen == 1)
            {
                FirstToken = LastToken;
            }

            if (Seen == ShingleSize)
            {
                FirstShingle = LastShingle;
            }

            return Seen < stopAfter;
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
    /// <returns>Where the walk stopped: the end of the text, or the end of the token after which the sink stopped it.</returns>
    private static int Walk<TSink>(ReadOnlySpan<char> s, ref TSink sink)
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
                return i;
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

            // Hash values 0 (a token fingerprint never is: its low bit is set) stand for "none" below; a shingle hash
            // of exactly 0 is one in 2^63 and is then simply not kept.
            var distinctive = length >= 12 || (digits && length >= 6) ? h | 1 : 0;
            var shingle = ++count >= ShingleSize ? Shingle(w0, w1, w2, h) & ~1UL : 0;
            if (!sink.Token(distinctive, shingle))
            {
                return i;
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
