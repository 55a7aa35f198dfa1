package nft

import (
	"fmt"

	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"
)

// verdictElement is one element of a verdict map: a key and the chain it jumps or goes to.
type verdictElement struct {
	Key   []byte
	Chain string
}

// dump sends an nf_tables dump request about our table by raw netlink in netns.
func dump(netns int, msgType uint16, attrs []netlink.Attribute) ([]netlink.Message, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer c.Close()
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return nil, err
	}
	return c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, b...),
	})
}

// ruleComments lists the comments of a chain's rules in order, by raw netlink:
// google/nftables v0.3.0 cannot decode some of our rules (the ct direction attribute).
func ruleComments(netns int, chain string) ([]string, error) {
	msgs, err := dump(netns, unix.NFT_MSG_GETRULE, []netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: nlenc.Bytes(TableName)},
		{Type: unix.NFTA_RULE_CHAIN, Data: nlenc.Bytes(chain)},
	})
	if err != nil {
		return nil, fmt.Errorf("list rules of %s: %w", chain, err)
	}
	var out []string
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		comment := ""
		for ad.Next() {
			if ad.Type() == unix.NFTA_RULE_USERDATA {
				comment, _ = userdata.GetString(ad.Bytes(), userdata.TypeComment)
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		out = append(out, comment)
	}
	return out, nil
}

// verdictElements dumps a verdict map of our table by raw netlink (NFT_MSG_GETSETELEM),
// decoding NFTA_DATA_VERDICT, which google/nftables v0.3.0 drops.
func verdictElements(netns int, set string) ([]verdictElement, error) {
	msgs, err := dump(netns, unix.NFT_MSG_GETSETELEM, []netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: nlenc.Bytes(TableName)},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: nlenc.Bytes(set)},
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", set, err)
	}
	var out []verdictElement
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					var e verdictElement
					list.Nested(func(el *netlink.AttributeDecoder) error {
						for el.Next() {
							switch el.Type() {
							case unix.NFTA_SET_ELEM_KEY:
								el.Nested(func(d *netlink.AttributeDecoder) error {
									for d.Next() {
										if d.Type() == unix.NFTA_DATA_VALUE {
											e.Key = d.Bytes()
										}
									}
									return nil
								})
							case unix.NFTA_SET_ELEM_DATA:
								el.Nested(func(d *netlink.AttributeDecoder) error {
									for d.Next() {
										if d.Type() != unix.NFTA_DATA_VERDICT {
											continue
										}
										d.Nested(func(v *netlink.AttributeDecoder) error {
											for v.Next() {
												if v.Type() == unix.NFTA_VERDICT_CHAIN {
													e.Chain = v.String()
												}
											}
											return nil
										})
									}
									return nil
								})
							}
						}
						return nil
					})
					out = append(out, e)
				}
				return nil
			})
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode %s: %w", set, err)
		}
	}
	return out, nil
}
