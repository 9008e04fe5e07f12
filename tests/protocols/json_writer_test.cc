#include "protocols/json/writer.hh"

#include <gtest/gtest.h>

using namespace pharos::json;

TEST(json_writer, nests_objects_and_arrays_with_commas_in_the_right_places) {
    writer w;
    w.begin_object().key("Key").string("a/b").key("Flags").number(uint64_t(42)).key("List").begin_array();
    w.number(1).number(2).begin_object().end_object().end_array().key("Ok").boolean(true).key("N").null().end_object();
    EXPECT_EQ(w.str(), R"({"Key":"a/b","Flags":42,"List":[1,2,{}],"Ok":true,"N":null})");
}

TEST(json_writer, escapes_strings_as_go_does) {
    std::string out;
    append_quoted(out, "a\"b\\c\n\t<>&\x01");
    EXPECT_EQ(out, R"("a\"b\\c\n\t\u003c\u003e\u0026\u0001")");
    out.clear();
    append_quoted(out, "caf\xc3\xa9 \xe2\x80\xa8");  // é stays, U+2028 is escaped
    EXPECT_EQ(out, "\"caf\xc3\xa9 \\u2028\"");
    out.clear();
    append_quoted(out, "bad\xff\xc3");  // invalid UTF-8 becomes U+FFFD, byte by byte
    EXPECT_EQ(out, R"("bad\ufffd\ufffd")");
}

TEST(json_writer, base64_round_trips_and_rejects_junk) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("hello world"), "aGVsbG8gd29ybGQ=");
    std::string out;
    std::vector<std::string> samples = {"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)};
    for (const std::string& s : samples) {
        ASSERT_TRUE(base64_decode(base64_encode(s), out)) << s;
        EXPECT_EQ(out, s);
    }
    EXPECT_FALSE(base64_decode("Zg=", out));
    EXPECT_FALSE(base64_decode("Z*==", out));
    EXPECT_FALSE(base64_decode("Zg=a", out));
}

TEST(json_writer, doubles_use_the_shortest_round_trip_form) {
    writer w;
    w.begin_array().number(0.1).number(1e21).number(3.0).end_array();
    EXPECT_EQ(w.str(), "[0.1,1e+21,3]");
}
