using System.Security.Cryptography;
using System.Text;

namespace Warden.Core.Identity;

/// <summary>
/// Bearer tokens: random, shown once, stored only as a hash. Tokens carry 256 bits of entropy,
/// so a plain SHA-256 is enough; a slow password hash would only slow down every request.
/// </summary>
public static class Tokens
{
    /// <summary>Length in bytes of <see cref="Hash(string)"/>'s result.</summary>
    public const int HashLength = 32;

    /// <summary>Creates a new token whose prefix tells a human what kind of credential it is.</summary>
    public static string Create(PrincipalKind kind)
    {
        Span<byte> random = stackalloc byte[32];
        RandomNumberGenerator.Fill(random);
        var prefix = kind switch
        {
            PrincipalKind.Agent => "wdn_agt_",
            PrincipalKind.Operator => "wdn_op_",
            _ => "wdn_apr_",
        };
        return prefix + Base64UrlEncode(random);
    }

    /// <summary>The stored form of a token.</summary>
    public static byte[] Hash(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var bytes = Encoding.UTF8.GetBytes(token);
        return SHA256.HashData(bytes);
    }

    /// <summary>The hash as lower-case hex, handy as a dictionary key.</summary>
    public static string HashHex(string token) => Convert.ToHexStringLower(Hash(token));

    private static string Base64UrlEncode(ReadOnlySpan<byte> data) =>
        Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
