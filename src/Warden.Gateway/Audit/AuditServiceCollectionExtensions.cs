using Microsoft.Extensions.DependencyInjection;
using Warden.Gateway.Configuration;
using Warden.Gateway.Mcp;

namespace Warden.Gateway.Audit;

/// <summary>Adds the audit to a gateway's services.</summary>
internal static class AuditServiceCollectionExtensions
{
    /// <summary>
    /// Registers the audit log and wraps the registered <see cref="ICallDecider"/> in an <see cref="AuditingCallDecider"/>.
    /// Call after the decider and after <c>GatewayLifetime</c> are registered (the audit starts after the store and policy).
    /// </summary>
    /// <param name="services">The gateway's services.</param>
    /// <param name="config">The gateway's config.</param>
    /// <param name="auditCalls">False only for the stage benchmark (see <see cref="GatewayOptions.AuditCalls"/>).</param>
    public static IServiceCollection AddWardenAudit(this IServiceCollection services, WardenConfig config, bool auditCalls = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        services.AddSingleton<AuditLog>();
        var inner = services.LastOrDefault(d => d.ServiceType == typeof(ICallDecider))
            ?? throw new InvalidOperationException("register an ICallDecider before AddWardenAudit");
        if (auditCalls)
        {
            services.Remove(inner);
            services.AddSingleton<ICallDecider>(sp => new AuditingCallDecider(Resolve(inner, sp), sp.GetRequiredService<AuditLog>()));
        }

        services.AddHostedService<AuditLifetime>();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, AuditJsonContext.Default));
        return services;
    }

    private static ICallDecider Resolve(ServiceDescriptor d, IServiceProvider sp) => (ICallDecider)(
        d.ImplementationInstance
        ?? d.ImplementationFactory?.Invoke(sp)
        ?? ActivatorUtilities.CreateInstance(sp, d.ImplementationType!));
}
