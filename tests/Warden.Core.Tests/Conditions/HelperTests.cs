using Warden.Core.Conditions;
using static Warden.Core.Tests.Conditions.Kit;

namespace Warden.Core.Tests.Conditions;

public sealed class HelperTests
{
    [Theory]
    [InlineData("alice@Corp.Example", "corp.example")]
    [InlineData("\"Weird@Name\"@corp.example.", "corp.example")]
    [InlineData("https://User:pw@Docs.Example.org:8443/x?y#z", "docs.example.org")]
    [InlineData("https://good.example@evil.example/", "evil.example")]
    [InlineData("//cdn.example/lib.js", "cdn.example")]
    [InlineData("example.com/path", "example.com")]
    [InlineData("http://2852039166/", "169.254.169.254")]
    [InlineData("", "")]
    public void Domain(string input, string expected) => Assert.Equal(expected, NetHelpers.Domain(input));

    [Theory]
    [InlineData("http://2852039166/", "169.254.169.254")]
    [InlineData("http://0xA9FEA9FE/", "169.254.169.254")]
    [InlineData("http://0251.0376.0251.0376/", "169.254.169.254")]
    [InlineData("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254")]
    [InlineData("http://169.254.43518/", "169.254.169.254")]
    [InlineData("http://127.1/", "127.0.0.1")]
    [InlineData("http://[::ffff:169.254.169.254]/", "169.254.169.254")]
    [InlineData("http://[FD00:EC2:0:0:0:0:0:254]:80/", "fd00:ec2::254")]
    [InlineData("HTTP://Metadata.Google.Internal./computeMetadata", "metadata.google.internal")]
    [InlineData("http:\\\\evil.example\\x", "evil.example")]
    [InlineData("https://%65vil.example/", "evil.example")]
    [InlineData("https://example.com:443", "example.com")]
    public void UrlHost(string input, string expected) => Assert.Equal(expected, NetHelpers.UrlHost(input));

    [Theory]
    [InlineData("http://2852039166/latest/meta-data", true)]
    [InlineData("http://169.254.169.254/", true)]
    [InlineData("http://[fd00:ec2::254]/", true)]
    [InlineData("http://metadata.google.internal/", true)]
    [InlineData("http://10.1.2.3/", true)]
    [InlineData("http://172.31.0.1/", true)]
    [InlineData("http://172.32.0.1/", false)]
    [InlineData("http://192.168.0.10:8080/", true)]
    [InlineData("http://127.0.0.1/", true)]
    [InlineData("http://0x7f.1/", true)]
    [InlineData("http://017700000001/", true)]
    [InlineData("http://localhost:3000/", true)]
    [InlineData("http://app.localhost/", true)]
    [InlineData("http://[::1]/", true)]
    [InlineData("http://[fe80::1]/", true)]
    [InlineData("http://[::ffff:10.0.0.1]/", true)]
    [InlineData("http://100.64.0.1/", true)]
    [InlineData("http://0.0.0.0/", true)]
    [InlineData("https://example.com/", false)]
    [InlineData("http://8.8.8.8/", false)]
    [InlineData("http://[2001:4860:4860::8888]/", false)]
    public void IsPrivateAddress(string input, bool expected) => Assert.Equal(expected, NetHelpers.IsPrivateAddress(input));

    [Theory]
    [InlineData("http://2852039166/", true)]
    [InlineData("http://[fd00:ec2::254]/", true)]
    [InlineData("metadata.google.internal", true)]
    [InlineData("http://10.0.0.1/", false)]
    public void IsMetadataAddress(string input, bool expected) => Assert.Equal(expected, NetHelpers.IsMetadataAddress(input));

    [Theory]
    [InlineData("/allowed/file.txt", "/allowed", true)]
    [InlineData("/allowed", "/allowed", true)]
    [InlineData("/allowed/", "/allowed/", true)]
    [InlineData("/allowed_evil/file.txt", "/allowed", false)]
    [InlineData("/allowedevil", "/allowed", false)]
    [InlineData("/allowed/../etc/passwd", "/allowed", false)]
    [InlineData("/allowed/./sub/../file", "/allowed", true)]
    [InlineData("/allowed/%2e%2e/etc/passwd", "/allowed", false)]
    [InlineData("/allowed/%252e%252e/etc/passwd", "/allowed", false)]
    [InlineData("/allowed\\..\\etc", "/allowed", false)]
    [InlineData("//allowed//x", "/allowed", true)]
    [InlineData("/allowed/x\0/../../etc", "/allowed", false)]
    [InlineData("allowed/x", "/allowed", false)]
    [InlineData("../allowed/x", "/allowed", false)]
    [InlineData("/../../allowed/x", "/allowed", true)]
    [InlineData("/anything", "/", true)]
    public void PathWithin(string path, string root, bool expected) => Assert.Equal(expected, NetHelpers.PathWithin(path, root));

    [Theory]
    [InlineData("/a/./b/../c", "/a/c")]
    [InlineData("a/../../b", "../b")]
    [InlineData("/..", "/")]
    [InlineData("C:\\srv\\x", "C:/srv/x")]
    [InlineData("/srv/%41", "/srv/A")]
    [InlineData("", ".")]
    public void CanonicalPath(string path, string expected) => Assert.Equal(expected, NetHelpers.CanonicalPath(path));

    [Theory]
    [InlineData("alice@corp.example")]
    [InlineData("alice@CORP.example")]
    [InlineData("a@b@corp.example.")]
    [InlineData("https://corp.example/x")]
    [InlineData("https://corp.example:8443/x")]
    [InlineData("https://evil.example@corp.example/x")]
    [InlineData("https://corp.example%2F@evil.example/")]
    [InlineData("https://a:b:c/")]
    [InlineData("https:\\\\corp.example\\x")]
    [InlineData(" https://corp.example ")]
    [InlineData("//docs.example.org")]
    [InlineData("docs.example.org/path")]
    [InlineData("http://2852039166/")]
    [InlineData("")]
    public void Fused_host_lookup_agrees_with_the_helpers(string p)
    {
        var json = System.Text.Json.JsonSerializer.Serialize(new { p });
        foreach (var fn in new[] { "domain", "url_host" })
        {
            var fused = Eval($"{fn}(args.p) in lists.allowed_domains", json);
            var generic = Eval($"{fn}(args.p) in ['corp.example', 'docs.example.org']", json);
            Assert.Equal(generic, fused);
        }
    }

    [Theory]
    [InlineData("glob(args.p, '/srv/**')", "/srv/a/b.txt", true)]
    [InlineData("glob(args.p, '/srv/**')", "/srv", false)]
    [InlineData("glob(args.p, '/srv/*.txt')", "/srv/a.txt", true)]
    [InlineData("glob(args.p, '/srv/*.txt')", "/srv/x/a.txt", false)]
    [InlineData("glob(args.p, '/srv/**/*.txt')", "/srv/a.txt", true)]
    [InlineData("glob(args.p, '/srv/**/*.txt')", "/srv/x/y/a.txt", true)]
    [InlineData("glob(args.p, '/srv/file?.[ch]')", "/srv/file1.c", true)]
    [InlineData("glob(args.p, '/srv/file?.[!ch]')", "/srv/file1.c", false)]
    [InlineData("glob(args.p, '*.example.com')", "api.example.com", true)]
    [InlineData("glob(canonical_path(args.p), '/srv/**')", "/srv/../etc/passwd", false)]
    [InlineData("path_within(args.p, '/srv')", "/srv/../etc/passwd", false)]
    [InlineData("url_host(args.p) == '169.254.169.254'", "http://2852039166/", true)]
    [InlineData("is_private_address(args.p)", "http://2852039166/", true)]
    [InlineData("is_metadata_address(args.p)", "http://[::ffff:a9fe:a9fe]/", true)]
    [InlineData("domain(args.p) in lists.allowed_domains", "bob@CORP.example", true)]
    public void Helpers_in_conditions(string source, string p, bool expected)
    {
        var json = System.Text.Json.JsonSerializer.Serialize(new { p });
        var outcome = Eval(source, json);
        Assert.False(outcome.IsError, outcome.ErrorMessage);
        Assert.Equal(expected, outcome.IsTrue);
    }
}
