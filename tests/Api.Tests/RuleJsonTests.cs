using System.Text.Json;
using Api.Rules;

namespace Api.Tests;

public sealed class RuleJsonTests
{
    [Fact]
    public void A_misspelt_field_is_an_error_naming_it()
    {
        var e = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize(
            """{"name":"n","condition":{"kind":"threshold","forminutes":2}}""", RulesJsonContext.Default.RuleRequest));
        Assert.Equal("$.condition.forminutes", e.Path);
        Assert.Contains("'forminutes'", e.Message);
    }

    [Fact]
    public void A_rule_read_from_the_api_can_be_sent_back_with_its_version()
    {
        var request = JsonSerializer.Deserialize(
            """{"id":"r","name":"n","severity":"info","target":{"kind":"all"},"condition":{"kind":"offline","minutes":3},"version":7}""",
            RulesJsonContext.Default.RuleRequest)!;
        Assert.True(RuleValidator.TryCreate(request, "r", 8, out var rule, out var errors), string.Join("; ", errors.Keys));
        Assert.Equal(8, rule!.Version);
    }
}
