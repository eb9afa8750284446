// The HTML report's writer without a browser: escaping (HTML text, JSON inside <script>), the embedded data
// (rounding, NaN), the page's fixed structure, and the errors on bad examples. The browser checks are tests/html/.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/analysis/report_html.hpp"
#include "headlens/analysis/report_json.hpp"
#include "headlens/analysis/verdict_json.hpp"

namespace test_report_html {

using headlens::head_label;

namespace {

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

headlens::head_report small_report(const std::string& reason = "sink", const std::string& evidence = "mass") {
  std::vector<headlens::head_verdict> verdicts(2);
  verdicts[0].layer = 0;
  verdicts[0].head = 1;
  verdicts[0].label = head_label::unassigned;
  verdicts[0].reason = reason;
  verdicts[0].evidence.push_back({evidence, 0.5, std::numeric_limits<double>::quiet_NaN()});
  verdicts[1].layer = 0;
  verdicts[1].head = 0;
  verdicts[1].label = head_label::positional;
  verdicts[1].confidence = 0.875;
  verdicts[1].set_score(head_label::positional, 0.25);
  return headlens::make_report(verdicts, "annotated");
}

/// The text of the `headlens-data` element.
std::string data_of(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"headlens-data\">";
  const std::size_t begin = page.find(open);
  REQUIRE(begin != std::string::npos);
  const std::size_t end = page.find("</script>", begin);
  REQUIRE(end != std::string::npos);
  return page.substr(begin + open.size(), end - begin - open.size());
}

}  // namespace

TEST_CASE("report_html: HTML text escaping") {
  REQUIRE(headlens::detail::html_escape("a < b && \"c\" > 'd'") ==
          "a &lt; b &amp;&amp; &quot;c&quot; &gt; &#39;d&#39;");
  REQUIRE(headlens::detail::html_escape("plain na\xc3\xafve") == "plain na\xc3\xafve");  // UTF-8 untouched
}

TEST_CASE("report_html: JSON strings cannot end a script element") {
  using headlens::detail::json_string_literal;
  REQUIRE(json_string_literal("</script>") == "\"\\u003c/script\\u003e\"");
  REQUIRE(json_string_literal("<!--") == "\"\\u003c!--\"");
  REQUIRE(json_string_literal("a\"b\\c") == "\"a\\\"b\\\\c\"");
  REQUIRE(json_string_literal("it's & more") == "\"it\\u0027s \\u0026 more\"");
  REQUIRE(json_string_literal(std::string("tab\tnl\ncr\r\x01", 12)) ==
          "\"tab\\u0009nl\\u000acr\\u000d\\u0001\\u0000\"");
  REQUIRE(json_string_literal("a\xe2\x80\xa8z\xe2\x80\xa9") == "\"a\\u2028z\\u2029\"");  // JS line terminators
  REQUIRE(json_string_literal("\xe2\x82\xac") == "\"\xe2\x82\xac\"");  // other UTF-8 (the euro sign) as is
}

TEST_CASE("report_html: JSON numbers") {
  using headlens::detail::html_json_number;
  REQUIRE(html_json_number(0.5) == "0.5");
  REQUIRE(html_json_number(-1.25e-7) == "-1.25e-07");
  REQUIRE(html_json_number(std::numeric_limits<double>::quiet_NaN()) == "null");
  REQUIRE(html_json_number(std::numeric_limits<double>::infinity()) == "null");
}

TEST_CASE("verdict_json: numbers are the shortest text that reads back exactly") {
  using headlens::detail::json_number_exact;
  REQUIRE(json_number_exact(0.5) == "0.5");
  REQUIRE(json_number_exact(0.1) == "0.1");
  REQUIRE(json_number_exact(-2.0) == "-2");
  REQUIRE(json_number_exact(1.0 / 3) == "0.3333333333333333");
  REQUIRE(json_number_exact(-1.25e-7) == "-1.25e-07");
  REQUIRE(std::strtod(json_number_exact(0.123456789012345678).c_str(), nullptr) == 0.123456789012345678);
  REQUIRE(json_number_exact(std::numeric_limits<double>::quiet_NaN()) == "null");
  REQUIRE(json_number_exact(-std::numeric_limits<double>::infinity()) == "null");
}

TEST_CASE("report_html: hostile text stays inside the data element") {
  const std::string hostile = "</script><script>alert(1)</script><!-- \"q\" 'a' & <b>";
  headlens::html_maps maps;
  const std::vector<double> map = {1, 0, 0, 1};  // 1 layer, 1 head, 2 tokens
  maps.add(hostile, {hostile, "ok"}, map.data(), 1, 1);
  headlens::html_options options;
  options.title = hostile;
  options.note = hostile;
  std::ostringstream out;
  headlens::write_html(out, small_report(hostile, hostile), maps, options);
  const std::string page = out.str();
  // The page's own three script elements (error recorder, data, main script), whatever the text says.
  REQUIRE(count(page, "<script") == 3);
  REQUIRE(count(page, "</script") == 3);
  REQUIRE(count(page, "<!--") == 0);
  REQUIRE(count(page, "<b>") == 0);
  REQUIRE(
      count(page,
            "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;!-- &quot;q&quot; &#39;a&#39; &amp; &lt;b&gt;") ==
      3);  // <title>, <h1> and the note
  REQUIRE(page.find("<p class=\"note\">&lt;/script&gt;") != std::string::npos);
  const std::string data = data_of(page);
  REQUIRE(data.find('<') == std::string::npos);
  REQUIRE(data.find('>') == std::string::npos);
  REQUIRE(count(data, "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)") == 4);  // reason, evidence, title, token
}

TEST_CASE("report_html: the data holds every head and the maps rounded to the decimals asked") {
  headlens::html_maps maps;
  // 1 layer x 2 heads over 2 tokens: head 0 rows (0.12345, 0.87655), (1, 0); head 1 with a NaN.
  const std::vector<float> map = {0.12345f, 0.87655f, 1.0f, 0.0f, 0.5f, 0.5f, std::numeric_limits<float>::quiet_NaN(),
                                  0.0004f};
  maps.add("two", {"a", "b"}, map.data(), 1, 2);
  std::ostringstream out3, out2;
  headlens::write_html(out3, small_report(), maps);
  const std::string data3 = data_of(out3.str());
  REQUIRE(data3.find("\"scale\":1000,") != std::string::npos);
  REQUIRE(data3.find("\"maps\":[123,877,1000,0,500,500,0,0]") != std::string::npos);
  REQUIRE(data3.find("\"tokens\":[\"a\",\"b\"]") != std::string::npos);
  REQUIRE(data3.find("\"layer_count\":1,\"head_count\":2") != std::string::npos);
  // Heads sorted by make_report; NaN scores as null; the evidence's missing baseline as null.
  REQUIRE(data3.find("{\"layer\":0,\"head\":0,\"label\":\"positional\",\"scores\":{\"syntactic\":null,"
                     "\"coreference\":null,\"discourse\":null,\"positional\":0.25},\"confidence\":0.875,"
                     "\"reason\":\"\",\"evidence\":[]}") != std::string::npos);
  REQUIRE(data3.find("\"evidence\":[{\"name\":\"mass\",\"value\":0.5,\"baseline\":null}]") != std::string::npos);
  // The JSON report's schema, head for head (docs/report-schema.md): one writer for both.
  const nlohmann::json page = nlohmann::json::parse(data3);
  const nlohmann::json report = headlens::report_to_json(small_report());
  REQUIRE(page.at("heads").size() == report.at("heads").size());
  for (std::size_t h = 0; h < report.at("heads").size(); ++h) CHECK(page.at("heads")[h] == report.at("heads")[h]);
  REQUIRE(data3.find("\"model\":[0,0,0,1,1]") != std::string::npos);  // head_labels order
  // One layer: only the early band has a layer (middle and late are left out).
  REQUIRE(data3.find("\"bands\":[{\"name\":\"early\",\"first\":0,\"last\":0,\"counts\":[0,0,0,1,1]}],") !=
          std::string::npos);
  headlens::html_options two;
  two.decimals = 2;
  headlens::write_html(out2, small_report(), maps, two);
  REQUIRE(data_of(out2.str()).find("\"maps\":[12,88,100,0,50,50,0,0]") != std::string::npos);
}

TEST_CASE("report_html: a report with no example maps and an empty report still make pages") {
  std::ostringstream with_heads, empty;
  headlens::write_html(with_heads, small_report());
  REQUIRE(data_of(with_heads.str()).find("\"examples\":[]") != std::string::npos);
  headlens::write_html(empty, headlens::make_report({}));
  const std::string page = empty.str();
  REQUIRE(page.rfind("<!DOCTYPE html>", 0) == 0);
  REQUIRE(page.find("</html>") != std::string::npos);
  REQUIRE(data_of(page).find("\"heads\":[],") != std::string::npos);
}

TEST_CASE("report_html: bad examples and options are rejected before anything is written") {
  const std::vector<float> map(8, 0.25f);
  headlens::html_maps maps;
  REQUIRE_THROWS_AS(maps.add("none", {}, map.data(), 1, 1), headlens::argument_error);
  REQUIRE_THROWS_WITH(maps.add("flat", {"a"}, map.data(), 0, 1),
                      "headlens: html_maps::add: example 'flat' has 0 layers x 1 heads, expected at least 1 x 1");

  headlens::html_maps wrong;
  wrong.examples.push_back({"short", {"a", "b"}, 1, 2, std::vector<float>(7, 0.f), {}});
  std::ostringstream out;
  REQUIRE_THROWS_AS(headlens::write_html(out, small_report(), wrong), headlens::shape_error);
  REQUIRE_THROWS_WITH(headlens::write_html(out, small_report(), wrong),
                      "headlens: write_html: example 0 ('short') has 7 map values, expected layers x heads x n x n = "
                      "1 x 2 x 2 x 2 = 8");
  REQUIRE(out.str().empty());

  headlens::html_options options;
  options.decimals = 0;
  REQUIRE_THROWS_WITH(headlens::write_html(out, small_report(), {}, options),
                      "headlens: write_html: options.decimals is 0, expected 1 to 6");
  options.decimals = 7;
  REQUIRE_THROWS_AS(headlens::write_html(out, small_report(), {}, options), headlens::argument_error);
  REQUIRE(out.str().empty());
}

TEST_CASE("report_html: the causal check is a section of the page, and the JSON report's object in the data") {
  headlens::head_report r = small_report();
  std::ostringstream plain;
  headlens::write_html(plain, r);
  REQUIRE(plain.str().find("id=\"causal") == std::string::npos);
  REQUIRE(plain.str().find("detail-causal\">") == std::string::npos);
  REQUIRE(data_of(plain.str()).find("causal") == std::string::npos);

  headlens::causal_check_result c;
  c.random_sets = 20;
  c.seed = 9;
  c.units = 1;
  c.tokens = 8;
  for (std::size_t i = 0; i < 4; ++i) c.labels[i].label = headlens::head_categories[i];
  auto& pos = c.labels[3];
  pos.heads = {{0, 0}};
  pos.verdict = headlens::causal_verdict::supported;
  pos.phenomenon_tokens = 8;
  pos.effect = 0.75;
  pos.phenomenon_change = 0.75;
  for (int k = 0; k < 20; ++k) pos.random_effects.push_back(0.03125 * k);
  pos.random_mean = 0.296875;
  pos.random_sd = 0.18;
  pos.z = std::numeric_limits<double>::infinity();
  pos.p_value = 1.0 / 21;
  pos.scope = headlens::random_scope::same_layers;
  pos.possible_sets = 1;
  const std::string hostile = "</script><script>alert(1)</script> <!-- & 'x'";
  c.labels[0].reason = hostile;
  r.causal = c;
  std::ostringstream out;
  headlens::write_html(out, r);
  const std::string page = out.str();
  REQUIRE(page.find("<section id=\"causal\">") != std::string::npos);
  REQUIRE(page.find("<p class=\"hint\" id=\"detail-causal\"></p>") != std::string::npos);
  REQUIRE(count(page, "<script") == 3);  // the hostile reason stays data
  REQUIRE(count(page, "<!--") == 0);
  const std::string data = data_of(page);
  REQUIRE(data.find('<') == std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(data);
  // The object of the JSON report, field for field (numbers read back exactly, infinities as null).
  REQUIRE(parsed.at("causal") == headlens::causal_check_to_json(c));
  REQUIRE(parsed.at("causal").at("labels").at(0).at("reason") == hostile);
  REQUIRE(parsed.at("causal").at("labels").at(3).at("z").is_null());
  // Everything else is as without the check.
  nlohmann::json without = parsed;
  without.erase("causal");
  REQUIRE(without == nlohmann::json::parse(data_of(plain.str())));
}

}  // namespace test_report_html
