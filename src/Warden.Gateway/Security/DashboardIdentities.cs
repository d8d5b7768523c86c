using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Warden.Core.Identity;
using Warden.Core.Storage;
using Warden.Web;

namespace Warden.Gateway.Security;

/// <summary>Plugs Warden's principals into the dashboard's sign-in: the same tokens and claims as the API.</summary>
internal static class DashboardIdentities
{
    public static void Configure(DashboardOptions options)
    {
        options.BearerScheme = WardenClaims.Scheme;
        options.KindClaimType = WardenClaims.Kind;
        options.NameClaimType = WardenClaims.Name;
        options.GroupClaimType = WardenClaims.Group;
        options.ResolveToken = ResolveAsync;
        options.ValidateSession = ValidateAsync;
    }

    private static async ValueTask<ClaimsIdentity?> ResolveAsync(HttpContext context, string token, string authenticationType)
    {
        var directory = context.RequestServices.GetRequiredService<PrincipalDirectory>();
        var hash = Tokens.Hash(token);
        Principal? principal;
        try
        {
            principal = await directory.ResolveHashAsync(hash, context.RequestAborted).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            return null;
        }

        if (principal is null)
        {
            return null;
        }

        var identity = WardenClaims.CreateIdentity(principal, authenticationType);
        identity.AddClaim(new Claim(WardenClaims.TokenHash, Convert.ToHexStringLower(hash)));
        return identity;
    }

    private static async ValueTask<bool> ValidateAsync(HttpContext context, ClaimsPrincipal user)
    {
        var hex = user.FindFirstValue(WardenClaims.TokenHash);
        if (hex is not { Length: Tokens.HashLength * 2 })
        {
            return false;
        }

        byte[] hash;
        try
        {
            hash = Convert.FromHexString(hex);
        }
        catch (FormatException)
        {
            return false;
        }

        try
        {
            var principal = await context.RequestServices.GetRequiredService<PrincipalDirectory>().ResolveHashAsync(hash, context.RequestAborted).ConfigureAwait(false);

            // Same person, same kind, token not revoked.
            return principal is not null
                && principal.Name == user.FindFirstValue(WardenClaims.Name)
                && principal.Kind.ToString().Equals(user.FindFirstValue(WardenClaims.Kind), StringComparison.OrdinalIgnoreCase);
        }
        catch (StoreUnavailableException)
        {
            // Fail closed, as the bearer scheme does.
            return false;
        }
    }
}
