using System.Buffers;
using System.Text.Json;

namespace Simulator;

/// <summary>The three input formats of the design.</summary>
public enum PayloadFormat
{
    /// <summary><c>{"sensor","temperature","humidity","light","timestamp" (epoch s),"metadata":{"model","location"}}</c></summary>
    Slide,

    /// <summary><c>{"id","timestamp" (epoch ms),"metrics":{"temp","hum","heat_index","radiation"}}</c></summary>
    Engine,

    /// <summary><c>{"nodo","humedad","temperatura","sensacion","radiacion"}</c>, no timestamp (time of receipt).</summary>
    Serial,
}

/// <summary>
/// Writes request bodies of readings with <see cref="Utf8JsonWriter"/>: one object, a JSON array, or NDJSON. Ids,
/// locations, models and property names are encoded once; writing a reading allocates nothing.
/// </summary>
public sealed class PayloadWriter
{
    private static readonly JsonEncodedText SensorName = JsonEncodedText.Encode("sensor");
    private static readonly JsonEncodedText TemperatureName = JsonEncodedText.Encode("temperature");
    private static readonly JsonEncodedText HumidityName = JsonEncodedText.Encode("humidity");
    private static readonly JsonEncodedText LightName = JsonEncodedText.Encode("light");
    private static readonly JsonEncodedText TimestampName = JsonEncodedText.Encode("timestamp");
    private static readonly JsonEncodedText MetadataName = JsonEncodedText.Encode("metadata");
    private static readonly JsonEncodedText ModelName = JsonEncodedText.Encode("model");
    private static readonly JsonEncodedText LocationName = JsonEncodedText.Encode("location");
    private static readonly JsonEncodedText On = JsonEncodedText.Encode("on");
    private static readonly JsonEncodedText Off = JsonEncodedText.Encode("off");
    private static readonly JsonEncodedText IdName = JsonEncodedText.Encode("id");
    private static readonly JsonEncodedText MetricsName = JsonEncodedText.Encode("metrics");
    private static readonly JsonEncodedText TempName = JsonEncodedText.Encode("temp");
    private static readonly JsonEncodedText HumName = JsonEncodedText.Encode("hum");
    private static readonly JsonEncodedText HeatIndexName = JsonEncodedText.Encode("heat_index");
    private static readonly JsonEncodedText RadiationName = JsonEncodedText.Encode("radiation");
    private static readonly JsonEncodedText NodoName = JsonEncodedText.Encode("nodo");
    private static readonly JsonEncodedText HumedadName = JsonEncodedText.Encode("humedad");
    private static readonly JsonEncodedText TemperaturaName = JsonEncodedText.Encode("temperatura");
    private static readonly JsonEncodedText SensacionName = JsonEncodedText.Encode("sensacion");
    private static readonly JsonEncodedText RadiacionName = JsonEncodedText.Encode("radiacion");
    private static readonly JsonEncodedText[] LocationValues = FleetModel.Locations.Select(l => JsonEncodedText.Encode(l)).ToArray();
    private static readonly JsonEncodedText[] ModelValues = FleetModel.Models.Select(m => JsonEncodedText.Encode(m)).ToArray();
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    /// <summary>One writer per thread, reset onto each output: writing a body allocates nothing.</summary>
    [ThreadStatic]
    private static Utf8JsonWriter? _json;

    private readonly FleetModel _model;
    private readonly JsonEncodedText[] _ids;

    public PayloadWriter(FleetModel model, PayloadFormat format, int batch, bool ndJson)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        _model = model;
        Format = format;
        NdJson = ndJson;
        IsArray = !ndJson && batch > 1;
        _ids = new JsonEncodedText[model.Count];
        for (var i = 0; i < _ids.Length; i++)
        {
            _ids[i] = JsonEncodedText.Encode(model.Id(i));
        }
    }

    public PayloadFormat Format { get; }

    public bool NdJson { get; }

    /// <summary>True when bodies are JSON arrays (batch over 1 without NDJSON), even for a last batch of one.</summary>
    public bool IsArray { get; }

    public string ContentType => NdJson ? "application/x-ndjson" : "application/json";

    /// <summary>
    /// Writes the readings of the sensors at <paramref name="firstSlot"/> .. +<paramref name="slots"/> (slot s is
    /// sensor s mod N), skipping sensors silent at <paramref name="timeMs"/>, at most <paramref name="maxReadings"/>.
    /// Returns the number of readings written.
    /// </summary>
    public int Write(IBufferWriter<byte> output, long firstSlot, int slots, int maxReadings, long timeMs)
    {
        var json = _json ??= new Utf8JsonWriter(output, WriterOptions);
        json.Reset(output);
        return WriteReadings(json, output, firstSlot, slots, maxReadings, timeMs);
    }

    private int WriteReadings(Utf8JsonWriter json, IBufferWriter<byte> output, long firstSlot, int slots, int maxReadings, long timeMs)
    {
        var written = 0;
        if (IsArray)
        {
            json.WriteStartArray();
        }
        var sensor = (int)(firstSlot % _model.Count);
        for (var s = 0; s < slots && written < maxReadings; s++, sensor = sensor + 1 == _model.Count ? 0 : sensor + 1)
        {
            if (_model.HasSilentSensors && _model.IsSilent(sensor, timeMs))
            {
                continue;
            }
            if (NdJson && written > 0)
            {
                json.Flush();
                output.GetSpan(1)[0] = (byte)'\n';
                output.Advance(1);
                json.Reset(output);
            }
            WriteReading(json, sensor, timeMs);
            written++;
        }
        if (IsArray)
        {
            json.WriteEndArray();
        }
        json.Flush();
        return written;
    }

    /// <summary>How many readings <see cref="Write"/> would write for the same arguments.</summary>
    public int CountReadings(long firstSlot, int slots, int maxReadings, long timeMs)
    {
        if (!_model.HasSilentSensors)
        {
            return Math.Min(slots, maxReadings);
        }
        var count = 0;
        var sensor = (int)(firstSlot % _model.Count);
        for (var s = 0; s < slots && count < maxReadings; s++, sensor = sensor + 1 == _model.Count ? 0 : sensor + 1)
        {
            if (!_model.IsSilent(sensor, timeMs))
            {
                count++;
            }
        }
        return count;
    }

    private void WriteReading(Utf8JsonWriter json, int sensor, long timeMs)
    {
        var v = _model.Read(sensor, timeMs);
        json.WriteStartObject();
        switch (Format)
        {
            case PayloadFormat.Slide:
                json.WriteString(SensorName, _ids[sensor]);
                json.WriteNumber(TemperatureName, v.Temperature);
                json.WriteNumber(HumidityName, v.Humidity);
                json.WriteString(LightName, v.LightOn ? On : Off);
                json.WriteNumber(TimestampName, timeMs / 1000);
                json.WriteStartObject(MetadataName);
                json.WriteString(ModelName, ModelValues[sensor % ModelValues.Length]);
                json.WriteString(LocationName, LocationValues[sensor % LocationValues.Length]);
                json.WriteEndObject();
                break;
            case PayloadFormat.Engine:
                json.WriteString(IdName, _ids[sensor]);
                json.WriteNumber(TimestampName, timeMs);
                json.WriteStartObject(MetricsName);
                json.WriteNumber(TempName, v.Temperature);
                json.WriteNumber(HumName, v.Humidity);
                json.WriteNumber(HeatIndexName, v.HeatIndex);
                json.WriteNumber(RadiationName, v.SolarRadiation);
                json.WriteEndObject();
                break;
            default:
                json.WriteString(NodoName, _ids[sensor]);
                json.WriteNumber(HumedadName, v.Humidity);
                json.WriteNumber(TemperaturaName, v.Temperature);
                json.WriteNumber(SensacionName, v.HeatIndex);
                json.WriteNumber(RadiacionName, v.SolarRadiation);
                break;
        }
        json.WriteEndObject();
    }
}
