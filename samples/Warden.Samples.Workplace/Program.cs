using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Samples.Workplace;

var options = WorkplaceOptions.Parse(args, Environment.GetEnvironmentVariable);
if (options.ShowHelp)
{
    Console.Error.WriteLine(WorkplaceOptions.Usage);
    return 0;
}

var store = WorkplaceStore.Open(options.DataDirectory);
using var operations = new OperationLog(Path.Combine(options.DataDirectory, "operations.log"));

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [] });

// stdout carries the JSON-RPC stream, so every log line must go to stderr or the client sees garbage.
builder.Logging.ClearProviders();
builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
builder.Logging.SetMinimumLevel(LogLevel.Warning);

builder.Services.AddSingleton(options);
builder.Services.AddSingleton(store);
builder.Services.AddSingleton(operations);

builder.Services
    .AddMcpServer(o => o.ServerInfo = new() { Name = "workplace-server", Version = "1.0.0" })
    .WithStdioServerTransport()
    .WithToolsFromAssembly(typeof(WorkplaceStore).Assembly)
    .WithRequestFilters(filters => filters.AddCallToolFilter(OperationLog.Filter(operations)));

await builder.Build().RunAsync();
return 0;
