namespace Warden.Core.Policy;

/// <summary>
/// Glob patterns for names and URIs: <c>*</c> matches any run of characters except <c>/</c>, <c>**</c> any run
/// including <c>/</c>, <c>?</c> one character. Matching is linear in practice and allocation-free.
/// </summary>
public sealed class Glob
{
    private readonly string _pattern;
    private readonly bool _literal;

    /// <summary>Creates a glob.</summary>
    public Glob(string pattern)
    {
        _pattern = pattern;
        _literal = pattern.IndexOfAny(['*', '?']) < 0;
        MatchesAll = pattern is "*" or "**";
    }

    /// <summary>The pattern as written.</summary>
    public string Pattern => _pattern;

    /// <summary>True when the pattern has no wildcard.</summary>
    public bool IsLiteral => _literal;

    /// <summary>True for <c>*</c> and <c>**</c>.</summary>
    public bool MatchesAll { get; }

    /// <summary>Matches a whole string.</summary>
    public bool IsMatch(ReadOnlySpan<char> text) => _literal ? text.SequenceEqual(_pattern) : Match(_pattern, text);

    /// <summary>True when every string this glob matches is matched by <paramref name="other"/> too (conservative).</summary>
    public bool IsCoveredBy(Glob other) => other.MatchesAll || (other._literal ? _literal && _pattern == other._pattern : _literal && other.IsMatch(_pattern));

    private static bool Match(ReadOnlySpan<char> p, ReadOnlySpan<char> s)
    {
        // Iterative matcher with single backtrack point per star kind; '*' does not cross '/'.
        int pi = 0, si = 0, starP = -1, starS = -1;
        var starCrossesSlash = false;
        while (si < s.Length)
        {
            if (pi < p.Length && p[pi] == '*')
            {
                starCrossesSlash = pi + 1 < p.Length && p[pi + 1] == '*';
                pi += starCrossesSlash ? 2 : 1;
                starP = pi;
                starS = si;
                continue;
            }

            if (pi < p.Length && (p[pi] == '?' || p[pi] == s[si]))
            {
                pi++;
                si++;
                continue;
            }

            if (starP >= 0 && (starCrossesSlash || s[starS] != '/'))
            {
                starS++;
                si = starS;
                pi = starP;
                continue;
            }

            return false;
        }

        while (pi < p.Length && p[pi] == '*')
        {
            pi++;
        }

        return pi == p.Length;
    }

    /// <inheritdoc />
    public override string ToString() => _pattern;
}
