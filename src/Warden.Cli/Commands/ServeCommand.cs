using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Core.Text;
using Warden.Gateway;
using Warden.Gateway.Configuration;

namespace Warden.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var listen = new Option<string?>("--listen") { Description = "Override the listen address (host:port)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log debug details, including upstream stderr" };
        var command = new Command("serve", "Run the gateway: MCP for agents at /mcp, the API at /api/v1") { config, listen, verbose };
        command.SetAction(async (parse, ct) =>
        {
            var cfg = LoadConfig(parse.GetValue(config)!);
            WebApplication app;
            try
            {
                app = GatewayHost.Build(cfg, new GatewayOptions { Listen = parse.GetValue(listen), LogLevel = parse.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information });
            }
            catch (InvalidOperationException ex)
            {
                throw new CliException(ex.Message, 2);
            }

            try
            {
                await app.StartAsync(ct).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                throw new CliException($"cannot listen on {parse.GetValue(listen) ?? cfg.Listen}: {ex.Message}", 2);
            }

            Console.Error.WriteLine($"warden: listening on {string.Join(", ", app.Urls)} (MCP at /mcp, API at /api/v1); {cfg.Servers.Count} upstream(s); Ctrl+C to stop");
            await app.WaitForShutdownAsync(ct).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>Loads a config or fails with every problem listed.</summary>
    public static WardenConfig LoadConfig(string path)
    {
        try
        {
            return ConfigLoader.Load(path);
        }
        catch (SourceException ex)
        {
            throw new CliException("invalid configuration:" + Environment.NewLine + string.Join(Environment.NewLine, ex.Diagnostics.Select(d => "  " + d)), 2);
        }
    }
}
