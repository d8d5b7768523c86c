using System.Collections.Concurrent;
using Warden.Core.Identity;
using Warden.Core.Storage;

namespace Warden.Gateway.Security;

/// <summary>
/// Resolves bearer tokens to principals, caching the store's answers so a request costs a hash and a
/// dictionary lookup. The cache is cleared whenever the change feed reports a principal change, from this
/// process or another, so a revoked token stops working everywhere within one poll interval.
/// </summary>
public sealed class PrincipalDirectory(IWardenStore store)
{
    // Unknown tokens are remembered too, so a client hammering with a bad token does not hammer the store.
    private const int MaxNegative = 10_000;

    private readonly ConcurrentDictionary<string, Principal?> _cache = new(StringComparer.Ordinal);
    private int _negative;

    /// <summary>The principal holding a token, or null.</summary>
    public ValueTask<Principal?> ResolveAsync(string token, CancellationToken cancellationToken) =>
        ResolveHashAsync(Tokens.Hash(token), cancellationToken);

    /// <summary>The principal holding the token with this SHA-256, or null (dashboard sessions keep only the hash).</summary>
    public async ValueTask<Principal?> ResolveHashAsync(byte[] hash, CancellationToken cancellationToken)
    {
        var key = Convert.ToHexStringLower(hash);
        if (_cache.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var principal = await store.FindPrincipalByTokenHashAsync(hash, cancellationToken).ConfigureAwait(false);
        if (principal is null && Interlocked.Increment(ref _negative) > MaxNegative)
        {
            Invalidate();
        }

        _cache[key] = principal;
        return principal;
    }

    /// <summary>Forgets every cached answer.</summary>
    public void Invalidate()
    {
        _cache.Clear();
        Interlocked.Exchange(ref _negative, 0);
    }
}
