namespace Api.Tests;

/// <summary>The framework's messages for requests it could not read, in the API's words: no .NET type names.</summary>
public sealed class BadRequestHandlerTests
{
    [Theory]
    [InlineData("Failed to bind parameter \"Nullable<int> limit\" from \"abc\".", "limit", "limit must be a whole number; 'abc' is not")]
    [InlineData("Failed to bind parameter \"long offset\" from \"1e3\".", "offset", "offset must be a whole number; '1e3' is not")]
    [InlineData("Failed to bind parameter \"Nullable<DateTimeOffset> from\" from \"yesterday\".", "from",
        "from must be a date and time (ISO 8601, such as 2026-11-29T10:00:00Z); 'yesterday' is not")]
    [InlineData("Failed to bind parameter \"Nullable<bool> open\" from \"maybe\".", "open", "open must be true or false; 'maybe' is not")]
    [InlineData("Failed to bind parameter \"Nullable<SomeEnum> kind\" from \"x\".", "kind", "kind must be a valid value; 'x' is not")]
    [InlineData("Required parameter \"string id\" was not provided from route.", "id", "id is required")]
    public void Names_the_parameter_and_what_it_must_be(string message, string parameter, string problem) =>
        Assert.Equal((parameter, problem), BadRequestHandler.Describe(message));

    [Theory]
    [InlineData("Unexpected end of request content.", "The request body ended before the length its Content-Length header announced.")]
    [InlineData("Request body too large. The max request body size is 1048576 bytes.", "Request body too large. The max request body size is 1048576 bytes.")]
    [InlineData("Reading the request body timed out due to data arriving too slowly. See MinRequestBodyDataRate.",
        "The request body arrived too slowly or stopped before the length its Content-Length header announced.")]
    [InlineData("Something System.Int32 went wrong.", "The request could not be read.")]
    public void Describes_the_request_as_a_whole_otherwise(string message, string problem) =>
        Assert.Equal(((string?)null, problem), BadRequestHandler.Describe(message));
}
