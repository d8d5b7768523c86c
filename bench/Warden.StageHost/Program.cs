using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Warden.Gateway;
using Warden.Gateway.Configuration;

// Warden as `warden serve` runs it, with one stage taken out: the per-call audit records (decision, intent,
// outcome). The issue that built the gateway set its performance targets before the audit existed and asked every
// later stage to be measured switched on; Warden itself cannot switch the audit off (it never forwards a call it has
// not recorded), so bench/load/run.sh runs this host next to the real gateway to show the audit's share.
// Not a product: nothing but this program can build a gateway without the call audit.
//   dotnet Warden.StageHost.dll CONFIG [LISTEN]
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: Warden.StageHost CONFIG [LISTEN]");
    return 2;
}

WebApplication app;
try
{
    app = GatewayHost.Build(ConfigLoader.Load(args[0]), new GatewayOptions
    {
        Listen = args.Length > 1 ? args[1] : null,
        LogLevel = LogLevel.Warning,
        AuditCalls = false,
    });
}
catch (Exception ex) when (ex is Warden.Core.Text.SourceException or InvalidOperationException or IOException)
{
    Console.Error.WriteLine($"Warden.StageHost: {ex.Message}");
    return 2;
}

await app.RunAsync();
return 0;
