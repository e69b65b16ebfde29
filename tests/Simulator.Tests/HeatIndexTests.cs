namespace Simulator.Tests;

/// <summary>Known values of NOAA's heat index table.</summary>
public sealed class HeatIndexTests
{
    [Theory]
    [InlineData(30.0, 70, 35.0, 0.1)]        // 86 °F at 70 %: 95 °F
    [InlineData(37.7778, 40, 42.8, 0.2)]     // 100 °F at 40 %: 109 °F
    [InlineData(32.2222, 50, 35.0, 0.3)]     // 90 °F at 50 %: 95 °F
    public void Known_values_of_the_noaa_table(double celsius, double humidity, double expected, double tolerance)
    {
        Assert.Equal(expected, HeatIndex.Celsius(celsius, humidity), tolerance);
    }

    [Fact]
    public void Below_80_F_the_simple_formula_is_close_to_the_temperature()
    {
        Assert.Equal(19.36, HeatIndex.Celsius(20, 50), 0.01);
    }

    [Fact]
    public void Very_dry_and_very_humid_air_get_noaas_adjustments()
    {
        static double Rothfusz(double f, double rh) =>
            -42.379 + 2.04901523 * f + 10.14333127 * rh - 0.22475541 * f * rh - 0.00683783 * f * f - 0.05481717 * rh * rh
            + 0.00122874 * f * f * rh + 0.00085282 * f * rh * rh - 0.00000199 * f * f * rh * rh;

        // 95 °F at 5 %: minus (13 - 5) / 4 · sqrt((17 - 0) / 17) = 2 °F.
        Assert.Equal((Rothfusz(95, 5) - 2 - 32) * 5 / 9, HeatIndex.Celsius(35, 5), 1e-9);
        // 85 °F at 95 %: plus (95 - 85) / 10 · (87 - 85) / 5 = 0.4 °F.
        Assert.Equal((Rothfusz(85, 95) + 0.4 - 32) * 5 / 9, HeatIndex.Celsius((85 - 32) * 5 / 9.0, 95), 1e-9);
    }
}
